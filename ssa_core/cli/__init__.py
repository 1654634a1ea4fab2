"""The `ssa` command: argument parsing (`main`) and one module per subcommand."""
