"""What people hear: subscribe messages and the in-app inbox (`messages`), WeChat's server
pushes (`wechat_push`) and telling a person without WeChat through their town (`informing`).
"""
