"""The compliance reviewer's report: build, HTML, plots."""
