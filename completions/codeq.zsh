
#compdef codeq

_codeq_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _CODEQ_COMPLETE=complete_zsh codeq)
}

compdef _codeq_completion codeq

