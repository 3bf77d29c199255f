"""The sandbox WeChat's mobile pages (Jinja strings; Flask autoescapes render_template_string)."""

from __future__ import annotations

from adapter.wallet.sandbox.templates import PAGE_FOOT, page_head

_HEAD = page_head("微信 (沙箱)", "#07c160")

AUTHORIZE_PAGE = (
    "{% set title = '网页授权 / Sign in' %}" + _HEAD + """
<form method="post" class="card">
  <p>公众号 {{ appid }} 申请获得你的{{ '公开信息（昵称、头像）' if scope == 'snsapi_userinfo'
  else '身份标识' }}<br>
  <small>Which WeChat user is holding this phone? Choose a test user:</small></p>
  {% for user in users %}
  <label class="user"><input type="radio" name="openid" value="{{ user.openid }}"
    {% if user.openid == chosen or (not chosen and loop.first) %}checked{% endif %}>
    <span>{{ user.nickname }} <small>{{ user.openid }}</small></span>
  </label>
  {% endfor %}
  <input type="hidden" name="appid" value="{{ appid }}">
  <input type="hidden" name="redirect_uri" value="{{ redirect_uri }}">
  <input type="hidden" name="scope" value="{{ scope }}">
  <input type="hidden" name="state" value="{{ state }}">
  <p><button type="submit">允许 / Allow</button></p>
</form>
""" + PAGE_FOOT
)

CASHIER_PAGE = (
    "{% set title = '微信支付 / WeChat Pay' %}" + _HEAD + """
<div class="card">
  <div>{{ order.description }}</div>
  <div class="amount">¥{{ order.total_fen | yuan }}</div>
  <small>商户订单号 {{ order.out_trade_no }} · {{ order.state }}</small>
</div>
{% if payable %}
<form method="post" class="card">
  <input type="hidden" name="prepay_id" value="{{ order.prepay_id }}">
  <input type="hidden" name="return_url" value="{{ return_url }}">
  <button type="submit">立即支付 / Pay</button>
</form>
{% else %}
<div class="card">此订单不可支付 / This order cannot be paid ({{ order.state }}).</div>
{% endif %}
""" + PAGE_FOOT
)

RESULT_PAGE = (
    "{% set title = '支付结果 / Result' %}" + _HEAD + """
<div class="card"><p class="amount">{{ message }}</p>
{% if order %}<div>{{ order.description }} · ¥{{ order.total_fen | yuan }}</div>{% endif %}
</div>
{% if return_url %}<p><a href="{{ return_url }}">完成 / Back to the hospital</a></p>{% endif %}
""" + PAGE_FOOT
)
