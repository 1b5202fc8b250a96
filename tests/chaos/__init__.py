"""The chaos suite: faults injected with hystrixpy.chaos, and how the engine copes."""
