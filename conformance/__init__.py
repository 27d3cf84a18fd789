"""The ABP/1 conformance suite: judges a server or a client against docs/spec.md.

``conformance run`` (``conformance.cli``) runs the pytest packages
``conformance.suites.server``, ``conformance.suites.counter`` and
``conformance.suites.client`` through the plugin ``conformance.plugin``, and
``conformance.reports`` shows the verdict, requirement by requirement.
"""
