"""Places and what they publish: the divisions, departments and villages (`areas`), public
information about the kinds of aid (`public_info`), the service-point posters (`posters`) and
the codes that open the mini-program (`launch`).
"""
