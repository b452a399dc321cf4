"""Replaces (or appends) one marked section of BENCHMARKS.md: the part between
`<!-- NAME:start -->` and `<!-- NAME:end -->`. bench/report.py keeps these sections when it
rewrites the rest of the file."""


def replace_section(path, name, body_lines):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = "\n".join([start, *body_lines, end])
    try:
        text = open(path).read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(path, "w").write(text)
