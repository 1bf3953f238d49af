"""Code shared by several workloads; not a workload (the leading underscore keeps
``harness.discovery`` from listing it)."""
