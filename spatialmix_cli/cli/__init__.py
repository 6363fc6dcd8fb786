"""The command-line layer: parses options, calls library functions, prints. No experiment logic here."""
