"""Chinese for the admin page: the admin API's errors, translated once at its boundary.

The library (:mod:`index`) and the job runner speak English, for the CLI and the logs;
the admin page is Chinese. :func:`chinese` turns a known English message into its
Chinese sentence (keeping the file name and figures it names); a message that is
already Chinese passes unchanged, and an unknown one gets a Chinese sentence for its
HTTP status, so the page never shows English. The English original stays in the
API body as ``detail`` for scripts and bug reports.
"""

from __future__ import annotations

import re

#: (pattern, Chinese) pairs, first match wins; ``{name}`` and other groups are filled from the match.
_KNOWN: tuple[tuple[str, str], ...] = (
    # -- a file that cannot be read (index/loader.py, index/sandbox.py, index/store.py)
    (r"the library is empty.*", "文件库是空的：请先上传文件。"),
    (r"(?P<name>.+) is empty", "文件 {name} 是空的，没有可用的内容。"),
    (r"(?P<name>.+?): unsupported format.*", "不支持 {name} 的格式：请上传 .txt、.md、.docx 或 .pdf 文件。"),
    (r"unsupported format.*", "不支持这种文件格式：请上传 .txt、.md、.docx 或 .pdf 文件。"),
    (r"(?P<name>.+) is really a PDF, not (?P<suffix>\S+) text",
     "{name} 其实是 PDF 文件，不是 {suffix} 文本：请把扩展名改为 .pdf 再上传。"),
    (r"(?P<name>.+) is really a zip archive \(\.docx\?\), not (?P<suffix>\S+) text",
     "{name} 其实是 Word（.docx）文件，不是 {suffix} 文本：请把扩展名改为 .docx 再上传。"),
    (r"(?P<name>.+) has a (?P<enc>\S+) BOM but is not valid \S+",
     "{name} 的开头标明是 {enc} 编码，但内容不是合法的 {enc}：文件可能已损坏，请重新另存为 UTF-8。"),
    (r"(?P<name>.+) cannot be decoded.*",
     "无法识别 {name} 的文字编码（已尝试 UTF-8、GB18030、UTF-16、Big5）：请另存为 UTF-8 编码的文本再上传。"),
    (r"(?P<name>.+) is a legacy Word \.doc file.*",
     "{name} 是旧版 Word（.doc）文件：请在 Word 中“另存为” .docx 格式后再上传。"),
    (r"(?P<name>.+) is not a \.docx file.*",
     "{name} 不是有效的 Word（.docx）文件：请确认文件类型，或在 Word 中重新保存。"),
    (r"(?P<name>.+) is a corrupt \.docx.*", "{name} 已损坏，无法打开：请在 Word 中重新保存后再上传。"),
    (r"(?P<name>.+) (holds \d+ files|unpacks to).*",
     "{name} 解压后异常庞大（可能已损坏，或是“压缩炸弹”）：请在 Word 中重新保存后再上传。"),
    (r"(?P<name>.+) is not a PDF.*", "{name} 不是有效的 PDF 文件：请确认文件类型。"),
    (r"(?P<name>.+) has no text layer.*",
     "{name} 没有文字层（可能是扫描件）：请先做文字识别（OCR），或上传 Word / 文本版本。"),
    (r"(?P<name>.+) is password-protected", "{name} 设有密码保护：请去掉密码后再上传。"),
    (r"(?P<name>.+) is a corrupt PDF.*", "{name} 已损坏，无法读取：请重新导出 PDF 后再上传。"),
    (r"(?P<name>.+?): parsing took longer than (?P<s>\d+) s.*",
     "解析 {name} 超过 {s} 秒仍未完成：文件可能已损坏或过大。"),
    (r"(?P<name>.+?): parsing needs more than (?P<mb>\d+) MiB.*",
     "解析 {name} 需要超过 {mb} MiB 内存：文件可能已损坏或过大。"),
    (r"(?P<name>.+?): the parser stopped.*", "解析 {name} 时解析程序意外退出：文件可能已损坏或过大。"),
    (r"(?P<name>.+?): no sections or numbered items found.*",
     "在 {name} 中没有找到章节或编号条目（如“一、…”“1. …”“第一条”）：请确认这是一份政策文件。"),
    (r"two documents share the id '(?P<id>.+)'.*", "有两份文件的 ID 都是 {id}：请改名后重新上传其中一份。"),
    # -- library, versions, jobs
    (r"no document '(?P<id>.+)'.*", "文件库中没有 ID 为 {id} 的文件（可能已被删除）：请刷新页面。"),
    (r"no older index version.*", "没有更早的索引版本可以回滚。"),
    (r"(no index )?version '(?P<v>.+)'.*", "没有这个索引版本（{v}）：请刷新页面后重新选择。"),
    (r'the body must be a JSON object like \{"version".*', "回滚请求的格式不对：应为 {{\"version\": \"…\"}} 或留空。"),
    (r'"version" must be a string.*', "回滚请求中的 version 应是字符串。"),
    (r"no job '(?P<job>.+)'.*", "没有编号为 {job} 的任务：请刷新页面。"),
    (r"a valid admin token is required.*", "需要有效的管理令牌：请重新登录（请求头 Authorization: Bearer <令牌>）。"),
    (r"an index build is running and would replace.*", "正在重建索引，完成后会覆盖回滚的结果：请等重建完成后再回滚。"),
    (r"another index build is running.*",
     "另一个索引重建正在进行（可能是命令行的 policybot index build）：请等它完成后再试。"),
    (r"job (?P<job>\S+) is still (queued|running).*", "重建任务 {job} 尚未完成：请等它结束后再开始新的重建。"),
    (r"the worker running this job stopped.*", "执行此任务的服务进程已停止（可能被重启）：请重新开始重建索引。"),
    (r"the host running this job stopped.*", "执行此任务的服务器已停止：正在使用的索引没有变化，请重新开始重建索引。"),
    (r"the build lock was lost.*", "重建期间与数据库的连接中断，失去了重建锁：这次重建没有发布，请重新开始重建索引。"),
    (r"no index in .*", "还没有可用的索引：请先上传文件并重建索引。"),
    (r"no intact index version.*", "没有完好的索引版本：请重建索引。"),
    (r"the index was built with .*", "索引与当前的向量模型或词典不一致：请重建索引。"),
    # -- the test box's question (bot/channels/web.py)
    (r'the body must be a JSON object like \{"question".*|"question" is missing', "请输入要测试的问题。"),
    (r'"question" must be a string.*', "问题必须是文字。"),
    (r'"question" must be at most (?P<n>\d+) characters.*', "问题最多 {n} 个字。"),
    (r"internal error.*", "服务器内部错误（详情见服务器日志）。"),
    # storage_problem() in bot/jobs.py says it in Chinese first, then in English: keep the Chinese.
    (r"(?P<zh>数据目录无法写入.+?。请检查.+?。) The data directory.*", "{zh}"),
)
_PATTERNS = tuple((re.compile(pattern, re.DOTALL), chinese) for pattern, chinese in _KNOWN)

#: What to say, by HTTP status, when the message is not one of the known ones.
_BY_STATUS: dict[int, str] = {
    400: "请求无效：请检查填写的内容后重试。",
    401: "需要有效的管理令牌：请重新登录。",
    403: "没有权限执行此操作。",
    404: "找不到要操作的对象：请刷新页面。",
    405: "不支持此操作。",
    409: "操作冲突：另一个操作正在进行，请稍后再试。",
    413: "文件太大，超过了上传上限，无法上传。",
    429: "操作太频繁：请稍后再试。",
    503: "服务暂时不可用：请稍后再试。",
}
_CJK = re.compile(r"[\u3400-\u9fff]")


def chinese(message: str, status: int = 400) -> str:
    """``message`` in Chinese: translated when known, unchanged when it is Chinese already,
    else the Chinese sentence for ``status``."""
    for pattern, template in _PATTERNS:
        match = pattern.fullmatch(message.strip())
        if match:
            return template.format(**match.groupdict(default=""))
    if _CJK.search(message):
        return message
    return _BY_STATUS.get(status, "服务器内部错误（详情见服务器日志）。")
