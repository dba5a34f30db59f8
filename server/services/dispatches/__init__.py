"""Transfer slips (线索转办单): issuing, signing, returning and answering them (`transfers`), their
numbers (`numbering`), who sees and acts on which and the receiving units (`access`), revisits
and satisfaction (`revisits`), reading them (`reading`), the printed A4 slip (`printing`, its
template in `templates/slip.html`), deadlines and supervision (督办, `supervision`), and what
waits for a staff member today (`worklist`).
"""
