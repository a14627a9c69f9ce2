"""Superradiance of nuclear spins around a central electron spin (an NV centre in diamond).

An electron spin S couples to N nuclear spins through the flip-flop Hamiltonian
H = (A/2)(S+ A- + S- A+), A- = sum_i g_i I-_i, and decays at rate gamma (Lindblad operator
sqrt(gamma) S-). The nuclear polarization <Iz>(t) relaxes in a burst far brighter than N
independent emitters. Four solvers share the model in :mod:`.model`: ``general`` (exact,
excitation-number blocks, PyTorch CPU/GPU), ``symmetric`` (uniform couplings, collective
spin, very large N), ``trajectories`` (Monte Carlo wave functions on Ray) and ``euler``
(the original dense fixed-step algorithm, kept as the baseline).
"""
