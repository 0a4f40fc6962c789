"""The fixed frame of every reply, in Chinese and English: the only place its wording lives.

Templates in :mod:`bot.compose` fill these with verbatim quotes and references; nothing here
is ever a paraphrase of a document.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Phrases:
    """The fixed frame of every reply, in one language."""

    cite_line: str
    pointer: str
    next_part: str
    more: str
    abstain: str
    abstain_unstated: str  # {what}: the facts asked that the documents do not give
    fact_words: dict[str, str]  # index.facts type name -> what to call it in abstain_unstated
    fact_sep: str  # between two of them
    no_more: str
    suggest: str
    suggest_line: str
    no_suggest: str
    empty: str
    not_found: str
    no_part: str
    unsupported: str
    toc_docs: str
    toc_more: str
    toc_footer: str
    help: str
    greeting: str
    thanks: str
    faq_cite: str
    rated_good: str
    rated_bad: str
    rated_nothing: str


ZH = Phrases(
    cite_line="——{cite}（回复 {ref} 看全文）",
    pointer="另见{cite}（回复 {ref}）",
    next_part="（内容较长，回复 {ref}-{part} 查看下一部分）",
    more="（内容较长，回复 {ref} 查看全文）",
    abstain="抱歉，现有文件中没有找到与此直接相关的内容。",
    abstain_unstated="抱歉，现有文件中没有给出您问的{what}。",
    fact_words={"price": "金额", "clock_time": "时间", "date": "日期", "year": "年份", "count": "数量",
                "duration": "时长", "frequency": "频次", "age": "年龄", "score_line": "分数", "rate": "比例",
                "person": "人员姓名", "procedure": "办理流程", "website": "网址或平台", "phone": "电话",
                "address": "地址", "amount": "具体数字"},
    fact_sep="、",
    no_more="关于这个问题，文件中没有更多直接相关的内容了。",
    suggest="您可能想了解：",
    suggest_line="{item}（回复 {ref} 查看）",
    no_suggest="回复 目录 查看文件的全部条目。",
    empty="请换个说法，说说您想了解的具体事项，例如：“今年幼儿园有什么目标？”。回复 帮助 查看用法。",
    not_found="没有第{ref}{unit}，回复 目录 查看全部。",
    no_part="第{ref}项只有{parts}部分，回复 {ref} 从头查看。",
    unsupported="暂时只能回答文字问题，回复 帮助 查看用法。",
    toc_docs="已发布的文件（回复 目录 序号 查看该文件目录）：",
    toc_more="（目录较长，未能全部显示；可直接回复条目编号查看全文）",
    toc_footer="回复条目编号（如 12）查看全文。",
    greeting=("您好！我可以回答已发布政策文件里的问题，答案都是文件原文。"
              "直接问就行，例如：“今年幼儿园有什么目标？”回复 帮助 查看用法。"),
    thanks="不客气！还有问题随时问我。回复 帮助 查看用法。",
    faq_cite="——《常见问题》{date}",
    rated_good="谢谢反馈！还有问题随时问我。",
    rated_bad="抱歉没能帮上忙，已记下这个回答，我们会改进。",
    rated_nothing="请先提问，收到回答后再回复“有用”或“没用”。",
    help=(
        "我可以回答关于已发布政策文件的问题，答案均为文件原文摘录，并注明出处条目。\n"
        "可以这样问：\n"
        "· 今年幼儿园有什么目标？\n"
        "· 乡村教师有没有补贴？\n"
        "· 校园安全重点抓哪些工作？\n"
        "命令：\n"
        "· 目录：查看文件的全部条目\n"
        "· 12 或 第十二条：查看第12项全文\n"
        "· 帮助：显示本说明\n"
        "追问时可以直接说“那高中呢？”“还有呢？”。"
    ),
)

EN = replace(
    ZH,
    cite_line="— {cite} (reply {ref} for the full text)",
    pointer="See also {cite} (reply {ref})",
    next_part="(Continued: reply {ref}-{part} for the next part)",
    more="(Reply {ref} for the full text)",
    abstain="Sorry, the published documents do not cover this directly.",
    abstain_unstated="Sorry, the published documents do not give the {what} you ask about.",
    fact_words={"price": "amount of money", "clock_time": "time of day", "date": "date", "year": "year",
                "count": "number", "duration": "length of time", "frequency": "frequency", "age": "age",
                "score_line": "score", "rate": "share or rate", "person": "name", "procedure": "procedure",
                "website": "website or app", "phone": "phone number", "address": "address",
                "amount": "figure"},
    fact_sep=" and ",
    no_more="The documents say nothing more that bears directly on this.",
    suggest="Nearest items:",
    suggest_line="{item} (reply {ref})",
    no_suggest="Reply 目录 for the list of all items.",
    empty="Please rephrase your question, e.g. \"What are this year's goals for kindergartens?\"",
    not_found="There is no item {ref}; reply 目录 for the list.",
    no_part="Item {ref} has only {parts} parts; reply {ref} to read it from the start.",
    unsupported="I can only answer text questions; reply help.",
    greeting="Hello! Ask me about the published policy documents; I answer by quoting them. Reply help for more.",
    thanks="You're welcome! Ask me anything else about the documents. Reply help for more.",
    faq_cite="— 《常见问题》 FAQ, {date}",
    rated_good="Thanks for the feedback!",
    rated_bad="Sorry that did not help; the answer is noted so we can improve it.",
    rated_nothing="Ask a question first, then reply 有用 (helpful) or 没用 (not helpful) to its answer.",
    help=(
        "I answer questions about the published policy documents by quoting them verbatim "
        "(in Chinese), with the exact item cited.\n"
        "Try: \"Any plans to use 5G and AI in teaching?\"\n"
        "Commands: 目录 (list of items), 12 (full text of item 12), help."
    ),
)

PHRASES: dict[str, Phrases] = {"zh": ZH, "en": EN}
