"""Deliberately broken ABP/1 clients: the corpus the client suite proves itself on.

``base.Client`` is a small, correct argv-contract client written on raw
sockets (as someone would in any language, without the ``protocol``
package); ``defects.DEFECTS`` names each broken variant and the requirement
the client suite must fail it on. Run one with ``python -m
conformance.corpus.clients --defect NAME [--timeout S] HOST PORT OP NAME
[ENTRY]`` (``--list`` shows them all). The tutorial-style menu client is
``conformance.corpus.tutorial.addressbook_client``.
"""
