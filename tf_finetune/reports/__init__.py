"""Reports: the data check, classification metrics, the gallery of mistakes and the plots."""
