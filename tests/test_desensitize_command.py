"""``fedbank desensitize`` and the normalization offset map behind it."""

from __future__ import annotations

import io
import json

from common.privacy.desensitize import find_pii
from common.privacy.normalize import normalize
from simulations.cli.desensitize import desensitize_stream
from simulations.cli.main import main


def test_normalization_maps_spaced_spoken_and_full_width_digits_back_to_the_input() -> None:
    text = "卡号 ６２２５ and 5 5 2 0  8 4 1 1 or one three eight"
    norm = normalize(text)
    assert "6225" in norm.text and "55208411" in norm.text and "138" not in norm.text
    s = norm.text.index("55208411")
    start, end = norm.to_original(s, s + 8)
    assert text[start:end] == "5 5 2 0  8 4 1 1"


def test_spans_index_the_original_text_for_chinese_numerals_read_aloud() -> None:
    text = "电话幺三八 零零幺三 八二七五，谢谢"
    spans = find_pii(text)
    assert [(text[s:e], t) for s, e, t in spans] == [("幺三八 零零幺三 八二七五", "PHONE")]


def test_stream_writes_one_json_line_per_input_with_offsets_into_the_input() -> None:
    out, err = io.StringIO(), io.StringIO()
    src = io.BytesIO("Call me on 13812345678\n没有个人信息\n".encode())
    assert desensitize_stream(src, out, err) == 0
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["text"] == "Call me on [PHONE]" and first["counts"] == {"PHONE": 1}
    assert first["spans"] == [{"start": 11, "end": 22, "type": "PHONE"}]
    assert second == {"text": "没有个人信息", "spans": [], "counts": {}}


def test_bad_lines_get_one_error_line_naming_the_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    src = io.BytesIO(b'{"text": "hi"}\nnot json\n{"x": 1}\n\xff\n')
    assert desensitize_stream(src, out, err, jsonl=True, name="in.jsonl") == 3
    lines = err.getvalue().splitlines()
    assert [line.split(":")[2] for line in lines] == ["2", "3", "4"]
    assert "not JSON" in lines[0] and "'text'" in lines[1] and "UTF-8" in lines[2]
    assert len(out.getvalue().splitlines()) == 1


def test_command_is_registered(tmp_path, capsys) -> None:
    path = tmp_path / "in.txt"
    path.write_text("my email is li.wei@qq.com\n", encoding="utf-8")
    assert main(["desensitize", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "my email is [EMAIL]"
