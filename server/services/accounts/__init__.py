"""Accounts and the people behind them: logging in and tokens (`auth`), staff accounts
(`staff`), the password rules (`passwords`), the security administrator's locks and policy
(`security`), village helpers invited by a one-time code (`helpers`), and a resident's rights
over their personal information (`data_rights`).
"""
