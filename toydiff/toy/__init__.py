"""The 1-D / 2-D toy track, built on toydiff's shared schedule-and-sampler layer.

- :mod:`~toydiff.toy.datasets`: 1-D mixtures and 2-D data sets, each drawn from a generator, with its exact
  :class:`~toydiff.GaussianMixture` where one exists;
- :mod:`~toydiff.toy.models`: the time-conditioned MLP noise predictor;
- :mod:`~toydiff.toy.metrics`: sample sets against the truth, each next to its two-sample noise floor;
- :mod:`~toydiff.toy.figures`: the track's figures by concept, each drawn with matplotlib (``*_mpl``) and
  Plotly (``*_plotly``) over data prepared once;
- :mod:`~toydiff.toy.run`: one run end to end (``train_toy``, ``load_toy``, ``oracle_run``), shared by the
  CLI, the app and the benchmarks; DDPM or flow matching (``process="flow"``);
- :mod:`~toydiff.toy.reflow`: one round of reflow of a flow run (Liu et al. 2023) and path straightness;
- :mod:`~toydiff.toy.cli`: ``toydiff toy`` (one module per subcommand); :mod:`~toydiff.toy.process_options`: the processes a run can use;
  :mod:`~toydiff.toy.demo`: ``toydiff demo``.

Nothing in :mod:`toydiff`'s core imports this package.
"""
