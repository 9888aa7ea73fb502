"""`dasct report`: one static HTML page of what dasct knows about a repository.

data.py collects the figures as a plain JSON-ready dict (no HTML); charts.py draws them as
inline SVG; page.py lays out the page and embeds the figures as JSON. Nothing in the page
is fetched: no script, no style sheet, no image comes from anywhere (docs/report.md).
"""

TOP_FILES = 20  # files the defect heat map shows by default; the rest are counted
