"""What the district reads back: the monthly statistics and the towns' monthly summaries
(`monthly`), the help given in a month (`figures`) and the leaders' dashboard (`dashboard`).
"""
