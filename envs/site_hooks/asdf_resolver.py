"""AsdfFile.resolver for jwst 0.9.0 (release-fix data, envs/fixes.toml).

jwst 0.9.0 loads every data model schema with `asdf_schema.load_schema(...,
resolver=asdf_file.resolver)`. That method was added on asdf's development branch on
2017-11-24 (ea04eba, "Consolidate tag and url resolvers to schema loading and validation")
and DMS ran a snapshot after it (asdf 1.3.1.dev124, astroconda-releases jwstdp/0.9.x); the
first asdf release with it is 2.0.0, which also changed the history format jwst 0.9.0 writes,
so no asdf release runs 0.9.0 as tagged (0.9.1 checks `hasattr(asdf_file, 'resolver')`).
This hook adds the method exactly as ea04eba wrote it when the environment's asdf lacks it,
and changes nothing else: it patches AsdfFile when asdf.asdf is first imported, so start-up
imports nothing. Loaded by a .pth file jwenv writes into site-packages (plan.site_hooks).
"""

from _jwenv_after_import import after_import


def _resolver(self, uri):
    return self.url_mapping(self.tag_to_schema_resolver(uri))


def _patch(module):
    cls = getattr(module, "AsdfFile", None)
    if cls is not None and not hasattr(cls, "resolver"):
        cls.resolver = _resolver


after_import("asdf.asdf", _patch)
