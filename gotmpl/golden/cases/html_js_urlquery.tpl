[[ html "<a href='x'>&\"" ]] [[ js "it's <b> \"q\" \\ =" ]] [[ urlquery "a b&c=d/é" ]]
