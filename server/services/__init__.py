"""Domain services: the rules. No Flask, no wechatpy; they receive a Session and only flush."""
