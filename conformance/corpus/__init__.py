"""Programs the suite tests itself on: tutorial-style peers and broken servers/clients.

These deliberately do NOT use the ``protocol`` package: they are what the
toolkit must make sense of.
"""
