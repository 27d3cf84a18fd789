"""Judging answers against docs/spec.md: the test author's session object (the
``abp`` fixture), verdicts carrying their requirement ID, and fuzzing."""
