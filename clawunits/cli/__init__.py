"""The ``clawunits`` command line: thin over the service operations."""
