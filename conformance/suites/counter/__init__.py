"""The counter service's conformance tests (docs/spec.md section 7)."""
