"""The test modules, one package per suite: ``server`` (the address book),
``counter`` (the counter service) and ``client`` (with its scripted server)."""
