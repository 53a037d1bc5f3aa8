"""``nnspec playground``: a local web app to edit a spec and watch it train.

datasets.py (TensorFlow Playground's 2-D sets, iris with two features, mcycle), check.py (the
editor's live validation, through the CLI's loader and shape inference), session.py (one
page's training worker), frames.py (what the page draws), guard.py (Host/Origin checks),
app.py (the Starlette app), command.py (the subcommand), templates.py (starting specs) and
static/ (the page: plain HTML, CSS and JavaScript). Starlette and uvicorn are the optional
``ui`` extra.
"""
