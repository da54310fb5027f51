"""pytest plugins of the test suite, loaded from tests/conftest.py."""
