"""DVC stage scripts: thin main()s that read params.yaml, call the eae library and write outputs."""
