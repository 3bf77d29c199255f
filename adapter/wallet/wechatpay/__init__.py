"""WeChat Pay API v3 over the kept library wechatpayv3: client, gateway (the WalletGateway
port), callback verification, platform keys, trade bill, official-account messages and sign-in,
constants and its configuration section (docs/wechatpay.md)."""
