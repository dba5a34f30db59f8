"""WeChat server push (`/wechat/callback`): signature checks and safe-mode decryption via wechatpy.

WeChat sends XML or JSON, in plain or safe (AES) mode. `read_push` verifies and decodes any of
them into one flat dict; subscription events' `List` is normalised to a list of dicts (WeChat
sends an object for one template and an array for several).
"""

from __future__ import annotations

import json
from typing import Any

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from server.config import Config


class CallbackRejected(Exception):
    """The push was not signed by WeChat with our token, or could not be decoded."""


def verify_url(config: Config, *, signature: str, timestamp: str, nonce: str) -> bool:
    """The GET check WeChat makes when the callback URL is configured."""
    try:
        check_signature(config.wechat_callback_token, signature, timestamp, nonce)
    except InvalidSignatureException:
        return False
    return True


def read_push(config: Config, body: bytes, args: dict[str, str]) -> dict[str, Any]:
    """Decode one push whose URL signature (`verify_url`) was checked already, and in safe mode
    check the message's own signature and decrypt it; raises CallbackRejected."""
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    if not verify_url(
        config, signature=args.get("signature", ""), timestamp=timestamp, nonce=nonce
    ):
        raise CallbackRejected("bad signature")  # the URL signature, in both modes
    try:
        outer = _parse(body)
        if args.get("encrypt_type") == "aes":
            if not config.wechat_callback_aes_key:
                raise CallbackRejected("safe mode push but no WECHAT_CALLBACK_AES_KEY configured")
            crypto = WeChatCrypto(
                config.wechat_callback_token, config.wechat_callback_aes_key, config.wechat_appid
            )
            plain = crypto.decrypt_message(outer, args.get("msg_signature", ""), timestamp, nonce)
            message = _parse(plain if isinstance(plain, bytes) else str(plain).encode())
        else:
            message = outer
    except CallbackRejected:
        raise
    except InvalidSignatureException as exc:
        raise CallbackRejected("bad signature") from exc
    except Exception as exc:  # malformed XML/JSON, bad base64, wrong appid, ...
        raise CallbackRejected(f"undecodable push: {type(exc).__name__}") from exc
    message["List"] = _items(message)
    return message


def _parse(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8").strip()
    parsed = json.loads(text) if text.startswith("{") else xmltodict.parse(text)["xml"]
    if not isinstance(parsed, dict):
        raise ValueError("push is not an object")
    return dict(parsed)


def _items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The template items of a subscription event, wherever this format put them."""
    found: Any = message.get("List")
    if found is None:
        for value in message.values():
            if isinstance(value, dict) and "List" in value:
                found = value["List"]
                break
    if isinstance(found, dict):
        return [found]
    if isinstance(found, list):
        return [item for item in found if isinstance(item, dict)]
    return []
