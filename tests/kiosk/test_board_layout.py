"""The display's sizing rules: names fit their box on one line, or on two balanced ones."""

from __future__ import annotations

from hallkit.kiosk.display.layout import balance, fit_font, rows_that_fit


def test_a_short_name_stays_on_one_line_at_full_size():
    assert balance("失业登记", 400, 40) == "失业登记"
    assert fit_font("失业登记", 400, 40) == 40


def test_a_long_name_breaks_near_its_middle_and_prefers_a_separator():
    assert balance("城乡最低生活保障对象认定", 300, 40) == "城乡最低生活\n保障对象认定"
    assert balance("农牧·规划·司法·户籍", 200, 40) == "农牧·规划·\n司法·户籍"
    broken = balance("困难残疾人生活补贴和重度残疾人护理补贴", 300, 40)
    size = fit_font(broken, 300, 40)
    assert all(len(line) * size <= 300 for line in broken.split("\n"))


def test_rows_that_fit_count_the_spacing_between_rows():
    assert rows_that_fit(100, 30, 5) == 3
    assert rows_that_fit(29, 30, 5) == 0
