"""Configuration: the run config HQ sends, and (later) the branch's own policy."""
