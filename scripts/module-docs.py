#!/usr/bin/env python
"""Write docs/modules.md from the modules' DOCUMENTATION (what ansible-doc shows).

    python scripts/module-docs.py            (needs PyYAML; run from the checkout)
"""

from __future__ import annotations

import ast
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def doc_of(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("DOCUMENTATION", "EXAMPLES"):
            yield node.targets[0].id, node.value.value


def fragment_options(name):
    path = os.path.join(REPO, "plugins", "doc_fragments", name.split(".")[-1] + ".py")
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            return yaml.safe_load(node.value.value).get("options", {})
    return {}


def text(value):
    value = value if isinstance(value, list) else [value]
    return " ".join(str(v) for v in value).replace("|", "\\|").replace("\n", " ")


def main():
    out = ["# Module reference", "",
           "Generated from the modules' documentation by `scripts/module-docs.py`; "
           "`ansible-doc palhm.palhm.NAME` shows the same on a controller.", ""]
    mod_dir = os.path.join(REPO, "plugins", "modules")
    for fname in sorted(os.listdir(mod_dir)):
        if not fname.endswith(".py"):
            continue
        parts = dict(doc_of(os.path.join(mod_dir, fname)))
        doc = yaml.safe_load(parts["DOCUMENTATION"])
        options = dict(doc.get("options") or {})
        for frag in doc.get("extends_documentation_fragment") or []:
            options.update(fragment_options(frag))
        out += ["## palhm.palhm.%s" % doc["module"], "", doc["short_description"], ""]
        out += ["- " + text(d) for d in doc["description"]] + [""]
        out += ["| option | type | default | description |", "|---|---|---|---|"]
        for name, opt in sorted(options.items()):
            out.append("| `%s` | %s | %s | %s |" % (name, opt.get("type", "str"),
                                                    "`%s`" % opt["default"] if "default" in opt else "",
                                                    text(opt.get("description", ""))))
        out += ["", "Examples:", "", "```yaml", parts.get("EXAMPLES", "").strip(), "```", ""]
    with open(os.path.join(REPO, "docs", "modules.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
