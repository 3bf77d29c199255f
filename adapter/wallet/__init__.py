"""The wallet platforms, one package each (alipay/; sandbox/ is a separate program imitating
Alipay, reached over the network only). No platform's words leave its package."""
