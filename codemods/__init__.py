"""The codemods: one module each, found by `dbfix.codemod.all_codemods`."""
