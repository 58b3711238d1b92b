a  [[- /* comment */ -]]  b
