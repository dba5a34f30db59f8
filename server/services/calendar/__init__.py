"""Working days on the official Chinese calendar (`workdays`) and the holiday table staff load
for years the `chinesecalendar` library does not know yet (`holidays`).
"""
