"""``bdc reproduce``: the paper's pipeline end to end at a chosen scale, resumable.

- ``scales``    what ``tiny`` / ``small`` / ``paper`` mean (problems, strategies, budgets, models)
- ``pipeline``  the steps (Table 1 searches, data from a train split, clustering, training,
                Table 2/3 evaluations), each recorded in ``DIR/state.json`` when done
- ``report``    ``DIR/report.md``: the tables in Markdown and bar charts as SVG
"""
