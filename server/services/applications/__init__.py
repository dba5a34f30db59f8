"""Applications for aid: filing them and adding papers (`filing`), reading them (`reading`), their
steps and withdrawal (`handling`), their photos (`photos`) and their decision (办结, `decisions`).
"""
