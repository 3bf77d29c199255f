"""The sandbox wallet's mobile pages (Jinja strings; Flask autoescapes render_template_string)."""

from __future__ import annotations


def page_head(brand: str, colour: str) -> str:
    """The top of a sandbox wallet page: ``brand`` in a header bar of ``colour`` (CSS)."""
    return """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f5;color:#333}
header{background:COLOUR;color:#fff;padding:12px 16px;font-size:17px}
main{padding:16px}.card{background:#fff;border-radius:8px;padding:16px;margin-bottom:12px}
label.user{display:flex;gap:10px;align-items:center;padding:10px 0;border-bottom:1px solid #eee}
small{color:#888}.amount{font-size:32px;font-weight:600;margin:8px 0}
button{width:100%;padding:14px;border:0;border-radius:8px;background:COLOUR;color:#fff;
font-size:17px}.note{color:#888;font-size:12px;text-align:center}
</style></head><body>
<header>BRAND · {{ title }}</header><main>
""".replace("COLOUR", colour).replace("BRAND", brand)


_HEAD = page_head("支付宝 (沙箱)", "#1677ff")
PAGE_FOOT = """<p class="note">Future Hospital Adapter wallet sandbox: not a real wallet, no real
money.</p></main></body></html>
"""

AUTHORIZE_PAGE = (
    "{% set title = '授权 / Authorize' %}" + _HEAD + """
<form method="post" class="card">
  <p>应用 {{ app_id }} 申请获取你的支付宝会员信息（{{ scope }}）<br>
  <small>The app asks for your wallet profile. Choose a test user:</small></p>
  {% for user in users %}
  <label class="user"><input type="radio" name="user_id" value="{{ user.user_id }}"
    {% if loop.first %}checked{% endif %}>
    <span>{{ user.name or user.nick_name }}
      <small>{{ user.logon_id }} · {{ '已实名' if user.is_certified else '未实名' }}
      {% if user.children %} · {{ user.children | length }} 个孩子{% endif %}</small></span>
  </label>
  {% endfor %}
  <input type="hidden" name="app_id" value="{{ app_id }}">
  <input type="hidden" name="redirect_uri" value="{{ redirect_uri }}">
  <input type="hidden" name="scope" value="{{ scope }}">
  <input type="hidden" name="state" value="{{ state }}">
  <p><button type="submit">授权 / Authorize</button></p>
</form>
""" + PAGE_FOOT
)

CASHIER_PAGE = (
    "{% set title = '收银台 / Cashier' %}" + _HEAD + """
<div class="card">
  <div>{{ trade.subject }}</div>
  <div class="amount">¥{{ trade.total_amount }}</div>
  <small>交易号 {{ trade.trade_no }} · {{ trade.trade_status }}</small>
</div>
{% if payable %}
<form method="post" class="card">
  <input type="hidden" name="return_url" value="{{ return_url }}">
  <button type="submit">确认付款 / Pay</button>
</form>
{% else %}
<div class="card">此交易不可支付 / This trade cannot be paid ({{ trade.trade_status }}).</div>
{% endif %}
""" + PAGE_FOOT
)

PAID_PAGE = (
    "{% set title = '支付结果 / Result' %}" + _HEAD + """
<div class="card">
  <p class="amount">{{ message }}</p>
  {% if trade %}<div>{{ trade.subject }} · ¥{{ trade.total_amount }}</div>{% endif %}
</div>
{% if return_url %}<p><a href="{{ return_url }}">返回商户 / Back to the hospital</a></p>{% endif %}
""" + PAGE_FOOT
)
