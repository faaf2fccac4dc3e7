"""Test-only machinery at a branch (fault injection), enabled only by the branch's policy."""
