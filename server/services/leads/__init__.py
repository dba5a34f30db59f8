"""The lead queue (线索): every signal about a person lands in their one open lead (`core`, by
`signal_rule`), reports from other channels (`intake`), who sees which lead (`access`), the
queue and its pages (`queue`, `queue_export`), one lead in full (`detail`), candidates, merging
and keeping apart (`merging`, by `matching`), and a lead's own life: triage, its handler, notes,
search (`life`).
"""
