"""``/admin`` while the admin page is off (``POLICYBOT_ADMIN_TOKEN`` unset): a Chinese page
that says how to switch it on, instead of a bare 404, and a JSON 404 that says the same
for the API paths. :func:`bot.app.create_app` mounts :data:`bp` when it does not mount
:data:`bot.admin.bp`.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

bp = Blueprint("admin_off", __name__, url_prefix="/admin")
MIN_TOKEN_CHARS = 16
OFF = f"管理后台未开启：请设置至少 {MIN_TOKEN_CHARS} 个字符（不含空格）的 POLICYBOT_ADMIN_TOKEN，然后重启服务。"


@bp.get("")
@bp.get("/")
def page() -> Response:
    """A Chinese page (status 404) with the steps that switch the admin page on."""
    return locked_down(Response(render_template("admin.html", off=True, min_chars=MIN_TOKEN_CHARS), status=404))


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def api(rest: str) -> tuple[Response, int]:
    """The admin API's 404 in its error shape, saying why."""
    from bot.app import error_response

    return error_response(404, OFF)


def locked_down(response: Response) -> Response:
    """``response`` with the admin pages' headers: only our own script, no framing, no referrer."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
