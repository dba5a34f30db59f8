"""Work in the villages: helpers' household visits and calls (`visits`, 摸排巡查; the form's
labels and checks in `visit_form`) and the ledgers built from them (`ledgers`, 分类台帐).
"""
