"""The command-line door: the parsers, the commands behind them, the catalogue's text, the demo."""
