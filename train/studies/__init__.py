"""The paper's studies (pooling, temperature, supervision) as grids of training runs, executed locally or on Ray."""
