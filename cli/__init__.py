"""The roof: the ``zkgrid`` command (:mod:`cli.main`), the demo (:mod:`cli.demo`) and
the community profiles it settles (:mod:`cli.community`). Nothing imports it."""
