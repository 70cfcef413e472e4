"""What a person reads on a page, checked for raw catalogue keys, developer strings and the other language.

`scan(page, allow)` collects the visible text of the page (text nodes whose element is rendered, plus the accessible
names: aria-label, placeholder, title, alt) in the page's current language. Islands in another language are left out
when they say so (`lang` attribute: the language switch, the agreement's legal text, what people wrote), and so is
anything marked `data-scan-skip` (the court's raw audit record). Names, case titles, codes and other data from
people are removed with `allow` before the checks."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

_COLLECT = """() => {
  const lang = document.documentElement.lang || "zh-CN";
  const zh = lang.startsWith("zh");
  const out = [];
  const foreign = (el) => {
    const island = el.closest("[lang]");
    return island && island !== document.documentElement && !island.lang.startsWith(zh ? "zh" : "en");
  };
  const skip = (el) => !el || el.closest("[data-scan-skip], script, style, noscript") || foreign(el)
    || (el.checkVisibility && !el.checkVisibility({ checkOpacity: false, checkVisibilityCSS: true }));
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!n.textContent.trim() || skip(n.parentElement)) continue;
    out.push(n.textContent.trim());
  }
  for (const el of document.querySelectorAll("[aria-label], [placeholder], [title], img[alt]")) {
    if (skip(el)) continue;
    for (const a of ["aria-label", "placeholder", "title", "alt"]) {
      const v = el.getAttribute(a);
      if (v && v.trim()) out.push(v.trim());
    }
  }
  out.push(document.title);
  return { lang, texts: out };
}"""

RAW_KEY = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)*(?:\.[a-z0-9]+(?:_[a-z0-9]+)*)+\b")
DEVELOPER = re.compile(r"person:\d|staff:\d|court:[a-z]|\w+\[\d+\]|\bnull\b|\bundefined\b|\[object|NaN|\{\w+\}|"
                       r"\bis required\b|\bmust be\b|_[a-z]+_")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
CJK = re.compile(r"[\u3400-\u9fff]")
ALWAYS = ("SHA-256", "PDF", "OneDoor", "ID")  # words a Chinese page uses as they are


async def scan(page: Page, allow: tuple[str, ...] = ()) -> list[str]:
    """Problems found in what the page shows now (empty when it reads right)."""
    got = await page.evaluate(_COLLECT)
    zh = str(got["lang"]).startswith("zh")
    problems = []
    for text in got["texts"]:
        clean = re.sub(r"https?://\S+", " ", text)  # links are addresses, not words
        for a in sorted((*allow, *ALWAYS), key=len, reverse=True):
            if a:
                clean = clean.replace(a, " ")
        if RAW_KEY.search(clean):
            problems.append(f"raw key {RAW_KEY.search(clean).group(0)!r} in {text!r}")  # type: ignore[union-attr]
        if DEVELOPER.search(clean):
            problems.append(f"developer string {DEVELOPER.search(clean).group(0)!r} in {text!r}")  # type: ignore[union-attr]
        if zh and LATIN_WORD.search(clean):
            problems.append(f"English {LATIN_WORD.search(clean).group(0)!r} in zh-CN: {text!r}")  # type: ignore[union-attr]
        if not zh and CJK.search(clean):
            problems.append(f"Chinese in English: {text!r}")
    return problems


async def both_languages(page: Page, allow: tuple[str, ...], where: str) -> None:
    """Scan in Chinese, switch to English and scan, switch back (the page stays where it was)."""
    problems = [f"[zh] {p}" for p in await scan(page, allow)]
    await page.locator("[data-lang-switch]").first.click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("[aria-busy=true]")).to_have_count(0)  # the page has redrawn itself
    problems += [f"[en] {p}" for p in await scan(page, allow)]
    await page.locator("[data-lang-switch]").first.click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.locator("[aria-busy=true]")).to_have_count(0)
    assert not problems, f"{where}: " + "\n".join(problems)
