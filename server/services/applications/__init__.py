"""Applications for aid: filing them (`filing`), their photos (`photos`) and their decision
(办结, `decisions`).
"""
