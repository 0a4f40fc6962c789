"""index.sentences: what counts as a statement worth quoting."""

from index.sentences import is_stub


def test_stubs_are_cells_and_labels_not_short_sentences():
    assert is_stub("小学段") and is_stub("73.35") and is_stub("湖南小学") and is_stub("2061/62.6  2100/66.5")
    assert not is_stub("强化体卫艺工作。") and not is_stub("校外培训机构；")
    assert not is_stub("全市省二级以上幼儿园比例（%）")
